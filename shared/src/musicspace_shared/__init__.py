"""MusicSpace common library."""
