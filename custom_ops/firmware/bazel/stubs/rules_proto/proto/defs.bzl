"""The native proto rule under rules_proto's name (see ../../rules_cc/WORKSPACE)."""

def proto_library(**kwargs):
    native.proto_library(**kwargs)
