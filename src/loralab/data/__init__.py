"""Data: readers, column mapping, label maps and splits."""

from loralab.data.dataset import DataSplits, LabelledTexts, load_data, load_labelled_file

__all__ = ["DataSplits", "LabelledTexts", "load_data", "load_labelled_file"]
