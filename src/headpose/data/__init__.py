"""Datasets: readers for the original formats and the packed ``.npz`` format."""
