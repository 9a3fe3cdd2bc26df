"""`brillm organization`: the functional-organisation analysis on the simulator or on checkpoints, written to -o DIR.

Output directory (written into a temporary sibling, then renamed; an existing DIR is an error):
  report.json, atoms.csv, subgroups.csv, maps.csv, similarity.csv, atoms_per_network.csv, measures.csv,
  controls.csv                        the report (one checkpoint or the simulator)
  figures/atoms_under_words.csv       atom time courses per volume with the words starting in it
  figures/similarity_r.csv, figures/similarity_dice.csv   atom x network matrices
  figures/timeline.csv                each stimulus token with its node, time and word (checkpoints)
  recovery.json                       recovery and calibration against the known truth (--simulate)
  comparison.csv + one sub-directory per checkpoint   when several checkpoints are given
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["POOLING", "METHODS", "ENCODINGS", "NOISE_KINDS", "register", "cmd_organization"]

POOLING = ("sum", "mean", "last")  # = responses.POOLING; spelled out so `brillm` starts without scipy
METHODS = ("ols_ar", "ols", "ridge")  # = encoding.METHODS
ENCODINGS = ("auto", "joint", "per-atom")  # = pipeline.ENCODINGS
NOISE_KINDS = ("ar1", "ar2", "pink")  # = simulate.NOISE_KINDS
ATOM_EDGES = ("wrap", "open")  # = simulate.ATOM_EDGES


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `organization` to a `brillm` parser."""
    p = subparsers.add_parser(
        "organization", help="sub-groups of neurons vs brain networks (Sun et al.): atoms, maps, matching",
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("models", nargs="*", metavar="MODEL", help="checkpoint directories (several: compare them)")
    p.add_argument("--simulate", action="store_true", help="run on the simulator and print recovery against the truth")
    p.add_argument("-o", "--output", required=True, type=Path, help="new output directory (must not exist)")
    stim = p.add_mutually_exclusive_group()
    stim.add_argument("--stimulus", type=Path, help="plain UTF-8 text, read at --word-rate from time 0")
    stim.add_argument("--transcript", type=Path, help="CSV/TSV of word, onset[, offset] in seconds")
    p.add_argument("--word-rate", type=float, default=2.5, help="words per second for --stimulus (default 2.5)")
    p.add_argument("--tr", type=float, help="seconds per volume (default 1.5 with --simulate)")
    p.add_argument("--volumes", type=int, help="number of volumes of the recording")
    p.add_argument("--brain", type=Path, help="time x voxel (or region) matrix, .npy or .csv/.tsv; or a 4-D NIfTI image with --mask")
    p.add_argument("--mask", type=Path, help="3-D NIfTI mask of the voxels to analyse (NIfTI --brain only); maps are "
                                             "then also written as images under maps/")
    p.add_argument("--templates", type=Path,
                   help="voxel x network matrix (.npy, or .csv with network names as header), or one integer label per voxel; "
                        "with NIfTI brain data also a 3-D label image or a 4-D stack of network maps")
    p.add_argument("--network-names", type=Path, help="text file with one network name per line (ascending labels), "
                                                      "or, for label images, lines of 'label name'")
    p.add_argument("--responses", choices=("node-gated", "landscape"), default="node-gated",
                   help="node-gated (node x unit where the node is active) or landscape (every node's energy)")
    p.add_argument("--pool", choices=POOLING, default="sum", help="pool token steps into volumes (default sum)")
    p.add_argument("-k", type=int, default=8, help="number of atoms K (default 8)")
    p.add_argument("--alpha", type=float, default=0.2, help="sparsity of the loadings (L1 penalty, default 0.2)")
    p.add_argument("--method", choices=METHODS, default="ols_ar",
                   help="encoding model: OLS with AR(p) prewhitening (default), plain OLS, or ridge")
    p.add_argument("--encoding", choices=ENCODINGS, default="auto",
                   help="all atoms in one model (joint), one model per atom, or auto (default): joint unless the "
                        "convolved atoms are collinear (variance inflation > 10), then per atom")
    p.add_argument("--random-starts", type=int, default=2,
                   help="random dictionary starts besides the SVD start; the lowest objective wins and the others' "
                        "agreement with it is the stability (default 2)")
    p.add_argument("--fdr-q", type=float, default=0.05, help="FDR level across voxels (default 0.05)")
    p.add_argument("--n-perm", type=int, default=1000, help="permutations for the matching p-values (default 1000)")
    p.add_argument("--phase-null", type=int, default=19,
                   help="phase-randomised atom sets (default 19, the fewest whose smallest p reaches .05)")
    p.add_argument("--surrogates", type=int, default=200,
                   help="phase-randomised copies per control test (default 200: smallest p 0.005)")
    p.add_argument("--seed", type=int, default=0, help="seed of dictionary learning, permutations, controls")
    p.add_argument("--no-untrained", action="store_true", help="skip the untrained-model control")
    sim = p.add_argument_group("simulator sizes (--simulate)")
    sim.add_argument("--n-tr", type=int, default=300, help="volumes (default 300)")
    sim.add_argument("--nodes", type=int, default=100, help="nodes (default 100)")
    sim.add_argument("--units", type=int, default=32, help="units per node (default 32)")
    sim.add_argument("--voxels", type=int, default=4000, help="voxels (default 4000)")
    sim.add_argument("--voxels-per-atom", type=int, default=250, help="voxels coupled to each true atom (default 250)")
    sim.add_argument("--k-true", type=int, default=8, help="true atoms (default 8)")
    hard = p.add_argument_group("departures from the method's assumptions (--simulate; --hard sets them all, any "
                                "flag given overrides it)")
    hard.add_argument("--hard", action="store_true", help="the hard preset: every departure below at once")
    hard.add_argument("--neuron-noise", type=float, help="noise norm of each neuron's response (default 0.5, hard 1.0)")
    hard.add_argument("--coupling-snr", type=float, nargs=2, metavar=("LOW", "HIGH"),
                      help="signal SD / noise SD of coupled voxels, drawn uniformly (default 0.35 0.7, hard 0.2 0.5)")
    hard.add_argument("--noise", choices=NOISE_KINDS, help="noise process: AR(1) (default), AR(2) or pink 1/f (hard)")
    hard.add_argument("--noise-rho", type=float, help="AR(1) coefficient of --noise ar1 (default 0.3)")
    hard.add_argument("--hrf-peak", type=float, nargs=2, metavar=("LOW", "HIGH"),
                      help="seconds at which each voxel's HRF peaks, drawn uniformly; the fitted HRF peaks at 5 "
                           "(default 5 5, hard 4 8)")
    hard.add_argument("--atom-correlation", type=float, help="correlation between true atoms (default 0, hard 0.3)")
    hard.add_argument("--atom-smoothness", type=float, help="Gaussian smoothing of true atoms in TRs (default 3, hard 6)")
    hard.add_argument("--spatial-smoothness", type=float,
                      help="voxels on a grid with coupled blobs and noise smoothed by this many voxels; the matching "
                           "null is then spatially smooth too (default 0 = independent voxels, hard 1.5)")
    hard.add_argument("--template-overlap", type=float,
                      help="share of each coupled set its template keeps, the rest other voxels (default 1, hard 0.6)")
    hard.add_argument("--lexical-drive", type=float,
                      help="share of variance half the atoms take from word occurrences (default 0, hard 0.5)")
    hard.add_argument("--atom-edges", choices=ATOM_EDGES,
                      help="smooth the true atoms circularly, as phase-randomised surrogates are (wrap, default), or "
                           "not (open, hard)")
    hard.add_argument("--word-gated", action="store_const", const=True,
                      help="neurons respond only when their word is heard, as BriLLM's node-gated ones (hard); the "
                           "lexical control is then their context-free responses")
    p.set_defaults(handler=cmd_organization)
    return p


def cmd_organization(args: argparse.Namespace) -> int:
    """brillm organization: import the analysis only now, and run it."""
    from .commands import run_command

    return run_command(args)
