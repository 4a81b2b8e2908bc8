"""The `prepare` stage: from the raw corpus to CLIP embeddings, modality means and the gap report."""

from kedro.pipeline import Node, Pipeline

from diffusion_bridge.corpus import SPLITS
from diffusion_bridge.pipelines.prepare import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.build_corpus_tables,
                inputs=["raw_corpus", "params:corpus"],
                outputs=["images_table", "captions_table", "corpus_report"],
                name="build_corpus_tables",
            ),
            Node(
                nodes.make_label_files,
                inputs=["images_table", "captions_table"],
                outputs={s: f"labels_{s}" for s in SPLITS},
                name="make_label_files",
            ),
            Node(
                nodes.obtain_clip,
                inputs=["images_table", "captions_table", "params:clip"],
                outputs="clip_model",
                name="obtain_clip",
            ),
            Node(
                nodes.embed_corpus_images,
                inputs=["clip_model", "images_table", "params:embedding"],
                outputs={s: f"image_embeddings_{s}" for s in SPLITS},
                name="embed_images",
            ),
            Node(
                nodes.embed_corpus_captions,
                inputs=["clip_model", "captions_table", "params:embedding"],
                outputs={s: f"text_embeddings_{s}" for s in SPLITS},
                name="embed_captions",
            ),
            Node(
                nodes.compute_modality_means,
                inputs=["image_embeddings_train", "text_embeddings_train"],
                outputs="modality_means",
                name="compute_modality_means",
            ),
            Node(
                nodes.report_modality_gap,
                inputs=[
                    "modality_means",
                    *(f"{m}_embeddings_{s}" for s in SPLITS for m in ("image", "text")),
                    "clip_model",
                ],
                outputs="gap_report",
                name="report_modality_gap",
            ),
        ]
    )
