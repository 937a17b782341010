"""The API's routers, one per resource; `mmkg.server.app.create_app` includes them."""
