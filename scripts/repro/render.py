"""Render a document.Document as markdown (GitHub flavour) and as a standalone HTML page.

The HTML is built with dominate (as pix2pix's pages are), so every text is escaped.
"""
import dominate
from dominate import tags

from . import document as d


def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc):
    out = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, d.Heading):
            out += ["#" * (block.level + 1) + " " + block.text, ""]
        elif isinstance(block, d.Paragraph):
            out += [block.text, ""]
        elif isinstance(block, d.Bullets):
            out += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, d.Table):
            if block.caption:
                out += [f"*{block.caption}*", ""]
            out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            out.append("|" + "|".join("---" for _ in block.header) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        elif isinstance(block, d.Image):
            out += [f"![{block.alt}]({block.src})", ""]
        elif isinstance(block, d.Code):
            out += [f"```{block.language}", block.text.rstrip("\n"), "```", ""]
        else:
            raise TypeError(f"unknown block {type(block).__name__}")
    return "\n".join(out).rstrip("\n") + "\n"


_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { font-style: italic; text-align: left; padding-bottom: 4px; }
pre { background: #f4f4f4; padding: 8px; overflow-x: auto; font-size: 85%; }
"""


def to_html(doc):
    page = dominate.document(title=doc.title)
    with page.head:
        tags.meta(charset="utf-8")
        tags.style(_STYLE)
    with page.body:
        tags.h1(doc.title)
        for block in doc.blocks:
            if isinstance(block, d.Heading):
                getattr(tags, f"h{min(block.level + 1, 6)}")(block.text)
            elif isinstance(block, d.Paragraph):
                tags.p(block.text)
            elif isinstance(block, d.Bullets):
                with tags.ul():
                    for item in block.items:
                        tags.li(item)
            elif isinstance(block, d.Table):
                with tags.table():
                    if block.caption:
                        tags.caption(block.caption)
                    with tags.tr():
                        for h in block.header:
                            tags.th(str(h))
                    for row in block.rows:
                        with tags.tr():
                            for c in row:
                                tags.td(str(c))
            elif isinstance(block, d.Image):
                attrs = {"width": str(block.width)} if block.width else {}
                tags.img(src=block.src, alt=block.alt, **attrs)
            elif isinstance(block, d.Code):
                tags.pre(tags.code(block.text))
            else:
                raise TypeError(f"unknown block {type(block).__name__}")
    return page.render()
