"""All SQL lives here, one module per noun, as plain strings with $n placeholders."""
