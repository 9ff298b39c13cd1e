"""Single images for applying a trained generator to your own inputs: pix2pix's SingleDataset
(`--dataset_mode single`). `root` is a folder (sub-folders included) or one image file, preprocessed as
the aligned pairs are. The images are the generator's input whatever --direction says, so they take
input_nc channels (pix2pix's takes output_nc under BtoA, the wrong count when the two differ).
"""
import os

from data.aligned import PreprocessedImages
from data.images import open_image
from data.layout import IMG_EXTENSIONS, find_images, frame_id, is_image_file
from pix2pix_tr.errors import UserError


class SingleDataset(PreprocessedImages):
    """The images of a folder (or one file): items {"A": [C, H, W] in [-1, 1], "frame_id", "A_paths"}."""

    def __init__(self, root, *, preprocess="resize_and_crop", load_size=256, crop_size=256, no_flip=True,
                 max_dataset_size=float("inf"), seed=0, input_nc=3):
        super().__init__(root, preprocess=preprocess, load_size=load_size, crop_size=crop_size, no_flip=no_flip,
                         seed=seed, channels={"--input_nc": input_nc})
        root = self.root
        if os.path.isfile(root):
            if not is_image_file(os.path.basename(root)):
                raise UserError(f"{root} is not an image file (pix2pix's image files: {' '.join(IMG_EXTENSIONS)})")
            self.paths, folder = [root], os.path.dirname(root)
        elif os.path.isdir(root):
            self.paths = find_images(root, max_dataset_size, what="images (label maps to synthesize from)")
            folder = root
        else:
            raise UserError(f"--dataroot {root} does not exist: pass a folder of images or one image file")
        self.frame_ids = [frame_id(p, folder) for p in self.paths]
        self.gray = input_nc == 1

    def __getitem__(self, index):
        img = open_image(self.paths[index])                  # RGB, or one line naming the file
        a = self.augmented(self.resized(img, self.gray), *self.transform_params(index, img.size))
        return {"A": a, "frame_id": self.frame_ids[index], "A_paths": self.paths[index]}
