// Workspace pool of CpuGemm: aligned native buffers for the packed panels, reused across calls.
using System.Runtime.InteropServices;

namespace Slak.Backends.Cpu;

internal static unsafe partial class CpuGemm
{
    // Packed panels are reused across calls: a GEMM per layer per step must not allocate (and page-fault) megabytes.
    // Buffers are 64-byte aligned native memory in a small pool, so concurrent callers each get their own; a caller
    // takes the smallest free buffer that fits, and the pool drops its smallest buffer when it is full.
    private static class Workspace
    {
        private const int MaxPooled = 8;
        private static readonly List<(nint Ptr, long Floats)> Free = [];
        private static readonly Lock Gate = new();

        public static float* Rent(long floats, out (nint Ptr, long Floats) lease)
        {
            lock (Gate)
            {
                int best = -1;
                for (int i = 0; i < Free.Count; i++)
                    if (Free[i].Floats >= floats && (best < 0 || Free[i].Floats < Free[best].Floats))
                        best = i;
                if (best >= 0)
                {
                    lease = Free[best];
                    Free.RemoveAt(best);
                    return (float*)lease.Ptr;
                }
            }
            long size = Math.Max(floats, 16);
            lease = ((nint)NativeMemory.AlignedAlloc((nuint)(size * sizeof(float)), 64), size);
            return (float*)lease.Ptr;
        }

        public static void Return((nint Ptr, long Floats) lease)
        {
            lock (Gate)
            {
                Free.Add(lease);
                if (Free.Count <= MaxPooled) return;
                int smallest = 0;
                for (int i = 1; i < Free.Count; i++)
                    if (Free[i].Floats < Free[smallest].Floats) smallest = i;
                NativeMemory.AlignedFree((void*)Free[smallest].Ptr);
                Free.RemoveAt(smallest);
            }
        }
    }
}
