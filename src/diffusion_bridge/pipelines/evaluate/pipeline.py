"""The `evaluate` stage (`kedro run --pipelines=evaluate`)."""

from kedro.pipeline import Node, Pipeline

from diffusion_bridge.pipelines.evaluate import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.build_split_representations,
                inputs=["image_embeddings_val", "bridged_image_embeddings_val", "text_embeddings_val", "modality_means",
                        "params:evaluate"],
                outputs="validation_representations",
                name="build_validation_representations",
            ),
            Node(
                nodes.build_split_representations,
                inputs=["image_embeddings_test", "bridged_image_embeddings_test", "text_embeddings_test", "modality_means",
                        "params:evaluate", "bridged_sweep_test"],
                outputs="test_representations",
                name="build_test_representations",
            ),
            Node(
                nodes.measure_alignment,
                inputs=["test_representations", "text_embeddings_test", "text_embeddings_train", "modality_means",
                        "corpus_report", "bridge_report", "params:evaluate"],
                outputs="alignment_metrics",
                name="measure_alignment",
            ),
            Node(
                nodes.write_alignment_report,
                inputs="alignment_metrics",
                outputs=["alignment_report", "alignment_summary"],
                name="write_alignment_report",
            ),
            Node(
                nodes.plot_alignment,
                inputs=["test_representations", "text_embeddings_test", "modality_means", "alignment_metrics"],
                outputs=["paired_cosine_histogram", "embedding_projection", "t0_sweep_plot"],
                name="plot_alignment",
            ),
        ]
    )
