"""The study around the method: what is compared, how it is measured, and how it is reported.

representations  the typed `Representations` of a split (raw, mean shift, noise, bridged, the t0 sweep, the
                 held-out caption) and how they are built from embeddings and modality means
gap              the modality-gap report of a fitted or loaded CLIP
alignment        the alignment metrics of every representation, with paired bootstrap comparisons
captioning       which representation goes to which decoder, COCO and attribute scores, the claims judged
claims           the paper's claims and their verdicts from paired bootstrap intervals
intervals        per-image statistics and percentile bootstrap intervals over test images
plots            the study's figures (projection, paired-cosine histogram, t0 sweep, contact sheet)
reports          every Markdown/console report formatter
"""
