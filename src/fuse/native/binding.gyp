{
  "targets": [{
    "target_name": "sdfuse",
    "sources": ["sdfuse.cc"],
    "cflags_cc": ["-O2", "-Wall", "-std=c++17", "<!@(pkg-config fuse3 --cflags)"],
    "cflags_cc!": ["-fno-exceptions"],
    "libraries": ["<!@(pkg-config fuse3 --libs)"]
  }]
}
