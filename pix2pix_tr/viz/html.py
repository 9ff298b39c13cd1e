"""HTML pages of images, as pix2pix's util/html.py: a title, headers, rows of captioned images.

The visualizer writes checkpoints/<name>/web/index.html and test.py results/<name>/<phase>_<epoch>/
index.html. Images live in the page's images/ folder and are linked relative to it, so a page folder
can be moved whole; the page is written atomically.
"""
import os
import posixpath
import urllib.parse

import dominate
from dominate.tags import a, br, h3, img, p, table, td, tr

from pix2pix_tr.run import atomic


class HTML:
    """One page at `web_dir/index.html`; images are expected under `web_dir/images/`."""

    def __init__(self, web_dir, title):
        self.web_dir = os.fspath(web_dir)
        self.img_dir = os.path.join(self.web_dir, "images")
        os.makedirs(self.img_dir, exist_ok=True)
        self.doc = dominate.document(title=title)

    def add_header(self, text):
        with self.doc:
            h3(text)

    def add_images(self, ims, txts, links, width=400):
        """One table row: image file names (relative to images/), captions, link targets."""
        row_table = table(border=1, style="table-layout: fixed;")
        self.doc.add(row_table)
        with row_table:
            with tr():
                for im, txt, link in zip(ims, txts, links):
                    with td(style="word-wrap: break-word;", halign="center", valign="top"):
                        with p():
                            with a(href=_image_url(link)):
                                img(style=f"width:{int(width)}px", src=_image_url(im))
                            br()
                            p(txt)

    def save(self):
        path = os.path.join(self.web_dir, "index.html")
        atomic.write_text(path, self.doc.render())
        return path


def _image_url(name):
    return urllib.parse.quote(posixpath.join("images", str(name).replace(os.sep, "/")))
