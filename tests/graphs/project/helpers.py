"""A module beside the graphs: importable because of "dependencies": ["."]."""


def shout(text: str) -> str:
    return f"{text.upper()}!"
