"""Dashboard pages: one Streamlit script each, listed in ``dashboards/app.py``."""
