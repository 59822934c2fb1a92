//! Property tests: the parsers never panic, builder output round-trips.
