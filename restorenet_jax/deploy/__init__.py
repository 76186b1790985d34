"""Deployment artifacts: a model as an ONNX graph, an OpenVINO IR, or a serialized `jax.export` (StableHLO) program.

    from restorenet_jax.deploy import onnx_graph, openvino_ir, stablehlo
    proto = onnx_graph.build_onnx(arch, params)             # NCHW, dynamic H/W, any model kind, TLC on or off
    openvino_ir.save_openvino(proto, "out/model.xml")       # + model.bin, float32 weights
    blob = stablehlo.export_stablehlo(arch, params)         # NHWC, runs with `stablehlo.load_stablehlo` alone

Layer 5 (beside inference, which runs these graphs as engines); the command is restorenet_jax.apps.export.
The runtimes (onnx, onnxruntime, openvino) are optional: they are imported only when used.
"""
