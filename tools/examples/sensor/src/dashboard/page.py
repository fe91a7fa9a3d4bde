def render(title):
    return "<html><body><h1>%s</h1></body></html>" % title
