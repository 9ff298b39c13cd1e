"""A tiny report model, so one report renders to both markdown and HTML (render.py).

A document is a title and a list of blocks; the report builder (report.py) only says what to show.
"""
import dataclasses


@dataclasses.dataclass
class Heading:
    level: int
    text: str


@dataclasses.dataclass
class Paragraph:
    text: str


@dataclasses.dataclass
class Bullets:
    items: list


@dataclasses.dataclass
class Table:
    header: list
    rows: list                      # lists of cell strings
    caption: str = ""


@dataclasses.dataclass
class Image:
    src: str                        # relative to the report's folder
    alt: str
    width: int = 0                  # HTML width in px; 0: natural size


@dataclasses.dataclass
class Code:
    text: str
    language: str = "bash"


@dataclasses.dataclass
class Document:
    title: str
    blocks: list = dataclasses.field(default_factory=list)

    def add(self, *blocks):
        self.blocks.extend(blocks)
        return self
