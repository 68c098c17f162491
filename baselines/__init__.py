"""Base (no-dendrite) reference models shared by tasks, and reference.yaml: published numbers."""
