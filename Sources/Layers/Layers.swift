// The Layers module; see DESIGN.md section 1.
