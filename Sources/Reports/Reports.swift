// The Reports module; see DESIGN.md section 1.
