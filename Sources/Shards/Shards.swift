// The Shards module; see DESIGN.md section 1.
