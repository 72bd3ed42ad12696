"""Pet breeds on serverless GPUs: the library behind the dashboard, the CLI and the jobs.

Everything that talks to a model goes through `lib.backends`; pages and `python -m lib`
are thin layers over the functions here. Nothing in `lib` imports streamlit.
"""
