"""`liveops demo`: the fleet end to end on the embedded broker."""
