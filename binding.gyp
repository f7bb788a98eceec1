# Builds native/tap.c (the TAP N-API addon) into build/Release/tap.node. Run through `npm install`
# (npm passes its nodedir); node-gyp run directly needs --nodedir=/usr to use the system headers.
{
  "targets": [
    {
      "target_name": "tap",
      "sources": ["native/tap.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
