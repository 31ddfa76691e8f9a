"""Data: synthetic scenes, RGB-D readers and writers, torch datasets."""
