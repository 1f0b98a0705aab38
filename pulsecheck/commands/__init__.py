"""Click command groups, one module per noun; `pulsecheck.cli` attaches them."""
