"""Temporal workflows: PupilJourney, one per pupil."""
