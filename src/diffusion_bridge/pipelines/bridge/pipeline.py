"""The `bridge` stage (`kedro run --pipelines=bridge`)."""

from kedro.pipeline import Node, Pipeline

from diffusion_bridge.pipelines.bridge import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.bridge_images,
                inputs=["diffusion_model", "image_embeddings_val", "image_embeddings_test", "modality_means", "params:bridge"],
                outputs=["bridged_image_embeddings_val", "bridged_image_embeddings_test", "bridged_sweep_test"],
                name="bridge_images",
            ),
            Node(
                nodes.augment_train_text,
                inputs=["diffusion_model", "text_embeddings_train", "modality_means", "params:augment"],
                outputs="augmented_text_embeddings_train",
                name="augment_train_text",
            ),
            Node(nodes.report_bridging, inputs=["params:bridge", "params:augment"], outputs="bridge_report",
                 name="report_bridging"),
        ]
    )
