"""Inference pipelines (diffusers-style, inference only): ``sign_video`` renders a signing
video from a reference image and per-frame conditions (stage I)."""
