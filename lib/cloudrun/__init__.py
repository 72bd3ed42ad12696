"""Cloud Run: service and job specs (rendered as gcloud commands or applied through `run_v2`),
discovery of deployed model services, cold-start measurement and job submission."""
