"""The contract shared by edge and cloud.

Sensing facts (``models.types``), labels, the wire schemas, the token vocabulary,
the model bundle format and the inference runtimes. Nothing here imports the edge,
the cloud or the training stack; ``models.train`` alone may import torch.
"""
