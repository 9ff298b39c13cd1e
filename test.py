"""Synthesize a split with a trained generator; every image is named by its frame id.

    python test.py --dataroot datasets/cityscapes --name city_tradam            # val, latest weights
    python test.py --name city_tradam --phase val --epoch 200 --eval

Writes results/<name>/<phase>_<epoch>/images/<frame_id>_{fake_B,real_A,real_B}.png and an
index.html beside them; evaluate/fcn_score.py reads that folder. The architecture comes from the
run's saved train_opt.json, so --dataroot and --name suffice. As in pix2pix the generator stays in
train mode (BatchNorm on the batch's statistics, dropout on) unless --eval is given.
"""
import os

import torch
from PIL import Image
from tqdm import tqdm

from data.aligned import AlignedDataset
from data.default import resolve_dataroot
from options import TestOptions, resolve_device
from pix2pix_tr import atomic
from pix2pix_tr.errors import UserError, run_cli
from pix2pix_tr.html import HTML
from pix2pix_tr.model import load_network
from pix2pix_tr.networks import define_G
from pix2pix_tr.imageutil import tensor2im

VISUAL_NAMES = ("fake_B", "real_A", "real_B")


def main(argv=None):
    opt = TestOptions().parse(argv)
    if opt.num_test != float("inf") and not (opt.num_test >= 1 and opt.num_test == int(opt.num_test)):
        raise UserError(f"--num_test {opt.num_test:g}: must be a positive integer (the number of frames "
                        "to synthesize), or left out for all")
    device = torch.device(resolve_device(opt.device))
    run_dir = os.path.join(opt.checkpoints_dir, opt.name)
    if not opt.saved_options_found:
        print(f"note: no train_opt.json in {run_dir}; the architecture comes from the command line")
    torch.manual_seed(opt.seed)

    dataroot = resolve_dataroot(opt.dataroot)
    dataset = AlignedDataset(dataroot, opt.phase, direction=opt.direction, preprocess=opt.preprocess,
                             load_size=opt.load_size, crop_size=opt.crop_size, no_flip=True,
                             max_dataset_size=opt.num_test, seed=opt.seed, input_nc=opt.input_nc,
                             output_nc=opt.output_nc)
    loader = torch.utils.data.DataLoader(dataset, batch_size=opt.batch_size, shuffle=False,
                                         num_workers=min(opt.num_threads, os.cpu_count() or 1),
                                         pin_memory=device.type == "cuda")

    netG = define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, norm=opt.norm,
                    use_dropout=not opt.no_dropout, init_type=opt.init_type, init_gain=opt.init_gain)
    load_generator(netG, run_dir, opt.epoch)
    netG.to(device)
    if opt.channels_last:
        netG.to(memory_format=torch.channels_last)
    if opt.eval:
        netG.eval()

    out_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
    webpage = HTML(out_dir, f"{opt.name}: {opt.phase}, epoch {opt.epoch}")
    image_dir = webpage.get_image_dir()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=opt.amp and device.type == "cuda")
    for batch in tqdm(loader, desc=f"synthesizing {opt.phase}", unit="batch"):
        with torch.no_grad(), autocast:
            fake_B = netG(batch["A"].to(device, non_blocking=True)).float().cpu()
        visuals = {"fake_B": fake_B, "real_A": batch["A"], "real_B": batch["B"]}
        for i, frame_id in enumerate(batch["frame_id"]):
            names = [f"{frame_id}_{kind}.png" for kind in VISUAL_NAMES]
            for name, kind in zip(names, VISUAL_NAMES):
                atomic.save_image(os.path.join(image_dir, name), Image.fromarray(tensor2im(visuals[kind][i])))
            webpage.add_header(frame_id)
            webpage.add_images(names, list(VISUAL_NAMES), names, width=opt.display_winsize)
    webpage.save()
    print(f"{len(dataset)} frames of {opt.phase} synthesized into {image_dir}")
    return out_dir


def load_generator(netG, run_dir, epoch):
    """Load <epoch>_net_G.pth into netG (a pix2pix file without num_batches_tracked loads too); a
    missing, empty, truncated or foreign file, or another architecture, is one UserError line."""
    load_network(netG, os.path.join(run_dir, f"{epoch}_net_G.pth"), "G")


if __name__ == "__main__":
    run_cli(main)
