"""From a Docusaurus docs tree to chunks with page URLs and anchors, embedded into Qdrant."""
