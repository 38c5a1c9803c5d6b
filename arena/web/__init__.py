"""The web side: JSON API routers, the Gradio page, and the app that mounts both."""
