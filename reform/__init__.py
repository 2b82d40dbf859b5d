"""The 2014 reform: moving journeys to the 2014 Code and the EHC statutory clock report."""
