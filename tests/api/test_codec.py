"""The payload codec on its own: encryption, key rotation, tampering, old histories."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from apistack import key_ring
from audit.replay import replay_runs
from audit.trail import Run
from crypto.codec import ENCODING, KEY_ID, BadKeyRing, EncryptionCodec, KeyRing, UnknownKey
from settings import Settings

HISTORIES = Path(__file__).parent.parent / "histories"
NOTE = b'{"concern": "Zebedee struggles to read"}'


def payload(data: bytes = NOTE) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def test_a_payload_is_unreadable_and_round_trips() -> None:
    codec = EncryptionCodec(key_ring("k1"))
    [sealed] = await codec.encode([payload()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert b"Zebedee" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # even the inner encoding is hidden
    [opened] = await codec.decode([sealed])
    assert opened == payload()
    # a fresh nonce each time: the same value never encrypts to the same bytes
    [again] = await codec.encode([payload()])
    assert again.data != sealed.data


async def test_rotation_the_newest_key_encrypts_and_old_ones_still_decrypt() -> None:
    old = key_ring("k1")
    [by_old] = await EncryptionCodec(old).encode([payload()])
    rotated = KeyRing((("k2", bytes(range(32))), *old.keys))  # k2 put first: the newest
    codec = EncryptionCodec(rotated)
    [by_new] = await codec.encode([payload()])
    assert by_new.metadata[KEY_ID] == b"k2"
    assert await codec.decode([by_old, by_new]) == [payload(), payload()]
    with pytest.raises(UnknownKey):  # a ring without k2 cannot read what k2 wrote
        await EncryptionCodec(old).decode([by_new])


async def test_tampering_or_relabelling_is_detected() -> None:
    ring = KeyRing((("k2", bytes(32)), ("k1", bytes(range(32)))))
    codec = EncryptionCodec(ring)
    [sealed] = await codec.encode([payload()])
    # flip a bit of the last byte (setting it to zero changed nothing when it was zero already)
    flipped = Payload(
        metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    )
    with pytest.raises(UnknownKey):
        await codec.decode([flipped])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k1"}, data=sealed.data)
    with pytest.raises(UnknownKey):
        await codec.decode([relabelled])


async def test_payloads_that_are_not_ours_pass_through() -> None:
    codec = EncryptionCodec(key_ring("k1"))
    assert await codec.decode([payload()]) == [payload()]


def test_key_rings_are_parsed_newest_first_and_never_printed() -> None:
    ring = KeyRing.parse("# made today\nk2:" + "A" * 43 + "\nk1:" + "B" * 43 + "  # the old one\n")
    assert [kid for kid, _ in ring.keys] == ["k2", "k1"] and ring.current[0] == "k2"
    assert "AAAA" not in repr(ring) and "AAAA" not in repr(Settings(payload_keys=ring))
    for bad in (
        "",
        "k1",
        "k1:" + "A" * 10,
        "k1:" + "A" * 43 + ",k1:" + "B" * 43,
        "a b:" + "A" * 43,
    ):
        with pytest.raises(BadKeyRing):
            KeyRing.parse(bad)
    env = {"SENFLOW_KEYS": "k1:" + "A" * 43}
    assert Settings.from_env(env).payload_keys is not None
    assert Settings.from_env({}).payload_keys is None  # no keys: payloads in clear, as before


async def test_histories_recorded_in_clear_still_replay_with_the_codec() -> None:
    """Switching encryption on must not orphan the journeys already running."""
    runs = [
        Run(p.stem, WorkflowHistory.from_json(p.stem, p.read_text()))
        for p in sorted(HISTORIES.glob("v3_*.json"))
    ]
    assert runs
    outcomes = await replay_runs(runs, Settings(payload_keys=key_ring("k1")).data_converter())
    assert [o.ok for o in outcomes] == [True] * len(runs), [o.failure for o in outcomes]
