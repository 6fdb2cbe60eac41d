// Parser of the .npy header: a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 28, 28), }
// Only what numpy writes is accepted (strings, True/False, tuples of integers); anything else is an error that
// says what was found, never an exception from an out-of-range index.
using System.Globalization;

namespace Slak.IO;

/// <summary>The three fields of an .npy header.</summary>
internal sealed record NpyHeader(string Descr, bool FortranOrder, long[] Shape)
{
    private sealed class Cursor(string text, string source)
    {
        public int Pos;

        public InvalidDataException Error(string what) =>
            new($"npy '{source}': bad header at character {Pos}: {what} (header: {Shorten(text)})");

        public void SkipSpace()
        {
            while (Pos < text.Length && char.IsWhiteSpace(text[Pos])) Pos++;
        }

        public char Peek()
        {
            SkipSpace();
            return Pos < text.Length ? text[Pos] : '\0';
        }

        public void Expect(char c)
        {
            if (Peek() != c) throw Error($"expected '{c}'");
            Pos++;
        }

        public bool TryTake(char c)
        {
            if (Peek() != c) return false;
            Pos++;
            return true;
        }

        public string ReadString()
        {
            char quote = Peek();
            if (quote is not ('\'' or '"')) throw Error("expected a quoted string");
            int start = ++Pos;
            while (Pos < text.Length && text[Pos] != quote)
            {
                if (text[Pos] == '\\') throw Error("escape sequences are not supported in header strings");
                Pos++;
            }
            if (Pos >= text.Length) throw Error("unterminated string");
            return text[start..Pos++];
        }

        public string ReadWord()
        {
            SkipSpace();
            int start = Pos;
            while (Pos < text.Length && (char.IsLetterOrDigit(text[Pos]) || text[Pos] is '_' or '-')) Pos++;
            return text[start..Pos];
        }

        public bool AtEnd()
        {
            SkipSpace();
            return Pos >= text.Length;
        }

        private static string Shorten(string s) => s.Length <= 200 ? s.TrimEnd() : s[..200] + "...";
    }

    public static NpyHeader Parse(string text, string source)
    {
        var c = new Cursor(text, source);
        string? descr = null;
        bool? fortran = null;
        long[]? shape = null;
        c.Expect('{');
        while (!c.TryTake('}'))
        {
            string key = c.ReadString();
            c.Expect(':');
            switch (key)
            {
                case "descr":
                    if (c.Peek() == '[')
                        throw c.Error("structured dtypes (a list descr) are not supported");
                    descr = c.ReadString();
                    break;
                case "fortran_order":
                    string word = c.ReadWord();
                    fortran = word switch
                    {
                        "True" => true,
                        "False" => false,
                        _ => throw c.Error($"fortran_order must be True or False, got '{word}'"),
                    };
                    break;
                case "shape":
                    shape = ReadShape(c);
                    break;
                default:
                    throw c.Error($"unexpected key '{key}' (an .npy header has descr, fortran_order, shape)");
            }
            if (!c.TryTake(','))
            {
                c.Expect('}');
                break;
            }
        }
        if (!c.AtEnd()) throw c.Error("text after the closing '}'");
        if (descr is null) throw c.Error("missing key 'descr'");
        if (fortran is null) throw c.Error("missing key 'fortran_order'");
        if (shape is null) throw c.Error("missing key 'shape'");
        return new NpyHeader(descr, fortran.Value, shape);
    }

    private static long[] ReadShape(Cursor c)
    {
        c.Expect('(');
        var dims = new List<long>();
        while (!c.TryTake(')'))
        {
            string word = c.ReadWord();
            if (word.EndsWith('L')) word = word[..^1]; // Python 2 era files write 3L
            if (!long.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out long d))
                throw c.Error($"shape entry '{word}' is not a non-negative integer");
            dims.Add(d);
            if (!c.TryTake(','))
            {
                c.Expect(')');
                break;
            }
        }
        return [.. dims];
    }
}
