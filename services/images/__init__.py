"""The image store: disk images as block manifests over shared blocks (docs/images.md)."""
