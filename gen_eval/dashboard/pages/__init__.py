"""Dashboard pages: one Streamlit script each, listed in ``gen_eval/dashboard/app.py``."""
