"""Closed journeys' histories kept for auditors after Temporal's retention."""
