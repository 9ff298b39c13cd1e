"""Synthesize with a trained generator: a split of pairs, or your own label maps.

    python test.py --dataroot datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    python test.py --dataroot datasets/cityscapes --name city_tradam           # prepared: all of val
    python test.py --dataroot my_label_maps/ --name city_tradam --model test   # single images

--model pix2pix (aligned pairs) writes results/<name>/<phase>_<epoch>/images/<frame_id>_{real_A,fake_B,
real_B}.png, --model test (single images) <frame_id>_{real,fake}.png, an index.html in pix2pix's column
order, and synthesis.json: the weights that made the folder and, once the last frame is written, its
frames (evaluate/fcn_score.py refuses a folder left incomplete). The architecture comes from the run's
saved options, so --dataroot and --name suffice; docs/train.md has the rest.
"""
import os

import torch
from tqdm import tqdm

from data.default import resolve_dataroot, test_split
from data.modes import DATASET_MODES
from evaluate import frames
from options import TestOptions, resolve_device
from options.base_options import generator, weights_label
from pix2pix_tr.errors import UserError, run_cli
from pix2pix_tr.viz.html import HTML
from pix2pix_tr.viz.images import save_image, tensor2im
from pix2pix_tr.models.networks import describe_networks, input_multiple
from pix2pix_tr.models.pix2pix import MODELS, autocast
from pix2pix_tr.run.checkpoint import load_network, weights_path
from pix2pix_tr.viz.wandb_run import WandbRun


def main(argv=None):
    options = TestOptions()
    opt = options.parse(argv)
    if opt.num_test != float("inf") and not (opt.num_test >= 1 and opt.num_test == int(opt.num_test)):
        raise UserError(f"--num_test {opt.num_test:g}: must be a positive integer (the number of frames "
                        "to synthesize), or left out for all")
    device = torch.device(resolve_device(opt.device))
    run_dir = os.path.join(opt.checkpoints_dir, opt.name)
    if not opt.saved_options_found:
        print(f"note: no saved options in {run_dir}; the architecture comes from the command line")
    torch.manual_seed(opt.seed)

    dataset = make_dataset(opt, options.explicit)
    loader = torch.utils.data.DataLoader(dataset, batch_size=opt.batch_size if opt.dataset_mode == "aligned" else 1,
                                         shuffle=False, num_workers=min(opt.num_threads, os.cpu_count() or 1),
                                         pin_memory=device.type == "cuda")

    netG = generator(opt)
    checkpoint = weights_path(run_dir, weights_label(opt), "G", opt.model_suffix)
    load_network(netG, checkpoint)
    if opt.verbose:
        print(describe_networks({"G": netG}))
    netG.to(device)
    if opt.channels_last:
        netG.to(memory_format=torch.channels_last)
    if opt.eval:
        netG.eval()

    out_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
    if opt.load_iter > 0:
        out_dir = f"{out_dir}_iter{opt.load_iter}"                  # as pix2pix names it
    webpage = HTML(out_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}")
    image_dir = webpage.img_dir
    frames.write_synthesis(out_dir, checkpoint)                     # incomplete until the last frame
    written = []
    wandb = WandbRun(opt.wandb_project_name, opt.name, vars(opt)) if opt.use_wandb else None
    real, fake, *target = MODELS[opt.model]
    for batch in tqdm(loader, desc=f"synthesizing {opt.phase}", unit="batch"):
        check_input_size(batch, opt.netG)
        with torch.no_grad(), autocast(device, opt.amp):
            fake_B = netG(batch["A"].to(device, non_blocking=True)).float().cpu()
        visuals = {real: batch["A"], fake: fake_B}
        if target and "B" in batch:
            visuals[target[0]] = batch["B"]
        for i, frame_id in enumerate(batch["frame_id"]):
            images = {kind: tensor2im(tensor[i]) for kind, tensor in visuals.items()}
            names = [f"{frame_id}_{kind}.png" for kind in images]
            for name, image in zip(names, images.values()):
                save_image(image, os.path.join(image_dir, name), aspect_ratio=opt.aspect_ratio)
            webpage.add_header(frame_id)
            webpage.add_images(names, list(images), names, width=opt.display_winsize)
            if wandb is not None:
                wandb.log_images(images)
            written.append(frame_id)
    webpage.save()
    frames.write_synthesis(out_dir, checkpoint, written)
    if wandb is not None:
        wandb.finish()
    print(f"{len(dataset)} {'frames of ' + opt.phase if opt.dataset_mode == 'aligned' else 'images'} "
          f"synthesized into {image_dir}")
    return out_dir


def make_dataset(opt, explicit):
    """The --dataset_mode's dataset. Pairs: <dataroot>/<phase>/ (a prepared dataset's phase and
    number of frames chosen for FCN-score unless typed); single images: --dataroot itself."""
    common = dict(preprocess=opt.preprocess, load_size=opt.load_size, crop_size=opt.crop_size, no_flip=True,
                  max_dataset_size=opt.num_test, seed=opt.seed, input_nc=opt.input_nc)
    if opt.dataset_mode == "single":
        if opt.dataroot is None:
            raise UserError("--dataset_mode single needs --dataroot: a folder of images (e.g. label maps) "
                            "or one image file")
        return DATASET_MODES["single"](opt.dataroot, **common)
    dataroot = resolve_dataroot(opt.dataroot)
    opt.phase, opt.num_test = test_split(dataroot, opt.phase, opt.num_test, phase_typed="phase" in explicit,
                                         num_test_typed="num_test" in explicit)
    common["max_dataset_size"] = opt.num_test
    return DATASET_MODES["aligned"](dataroot, opt.phase, direction=opt.direction, output_nc=opt.output_nc, **common)


def check_input_size(batch, netG):
    """One line when an image, as preprocessed, has a size the generator cannot take."""
    multiple = input_multiple(netG)
    height, width = batch["A"].shape[-2:]
    if height % multiple or width % multiple:
        raise UserError(f"{batch['A_paths'][0]} comes to {width}x{height} after --preprocess, but --netG {netG} "
                        f"takes sides that are multiples of {multiple}; use --preprocess resize_and_crop "
                        f"(resizes to --crop_size), or a --load_size / image size that is a multiple of {multiple}")


if __name__ == "__main__":
    run_cli(main)
