// slak_params.h: plain parameter structs shared by the kernels (device side) and their launchers (host side).
//
// POD only, fixed-width fields of types every compiler agrees on (int, long long, float), no host headers, so the
// same definition compiles under NVRTC, nvcc, the host emulator and matches the C# [StructLayout(Sequential)]
// mirror byte for byte. Families with many parameters pass one of these by value instead of a long argument list;
// add a struct here (or in a header of your own next to it) together with its C# mirror.
#pragma once

// Shape of an (N, C, H, W) tensor in row-major order.
struct SlakShapeNchw
{
    int n;
    int c;
    int h;
    int w;
};
