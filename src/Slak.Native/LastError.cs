// slak_last_error(): the message of the last failed call on this thread, as a NUL-terminated UTF-8 string owned by
// the thread (one native buffer per thread, reused and grown; valid until the next call on the same thread).
using System.Runtime.InteropServices;
using System.Text;

namespace Slak.Native;

internal static unsafe class LastError
{
    [ThreadStatic] private static byte* t_buffer;
    [ThreadStatic] private static int t_capacity;

    /// <summary>The current thread's message ("" when the last call succeeded).</summary>
    public static byte* Pointer
    {
        get
        {
            if (t_buffer == null) Set("");
            return t_buffer;
        }
    }

    /// <summary>Replaces the thread's message.</summary>
    public static void Set(string message)
    {
        int bytes = Encoding.UTF8.GetByteCount(message) + 1;
        if (bytes > t_capacity)
        {
            NativeMemory.Free(t_buffer);
            t_capacity = Math.Max(bytes, 256);
            t_buffer = (byte*)NativeMemory.Alloc((nuint)t_capacity);
        }
        int written = Encoding.UTF8.GetBytes(message, new Span<byte>(t_buffer, t_capacity - 1));
        t_buffer[written] = 0;
    }
}
