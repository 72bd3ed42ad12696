"""Trainers: the local CPU head for `pets-tuned` and the Gemma LoRA trainer for Cloud Run Jobs."""
