"""Synthetic training data: textured face meshes rendered at known angles."""
