def scale():
    return 0.5
