"""The api's edge, apart from the resources: every RPC passes through it once (``rpc.rpc``):
authentication (``auth``), the microversion (``microversion``), requests protobuf refused
(``request_decoding``), the context a servicer method gets (``request_context``) and domain
errors to gRPC status with Cinder's typed fault (``errors``)."""
