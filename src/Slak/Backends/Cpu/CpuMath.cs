// Scalar math shared by CPU kernels: erf (for exact GELU; .NET has no Math.Erf) and the GELU pair.
namespace Slak.Backends.Cpu;

/// <summary>Scalar functions used by CPU kernels.</summary>
internal static class CpuMath
{
    private const double InvSqrt2 = 0.70710678118654752440;
    private const double InvSqrt2Pi = 0.39894228040143267794;

    /// <summary>erf(x) to ~1e-15 relative (series for small |x|, continued fraction for erfc beyond).</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 2.5)
        {
            // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
            double sum = 0, term = ax, x2 = ax * ax;
            for (int n = 0; n < 60; n++)
            {
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
                term *= -x2 / (n + 1);
            }
            double r = 1.1283791670955126 * sum;
            return x < 0 ? -r : r;
        }
        if (ax > 6) return x < 0 ? -1 : 1;
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz, fixed depth)
        double f = ax;
        for (int k = 60; k >= 1; k--) f = ax + k / 2.0 / f;
        double erfc = Math.Exp(-ax * ax) / (f * 1.7724538509055160273);
        return x < 0 ? erfc - 1 : 1 - erfc;
    }

    /// <summary>GELU(x) = x * Phi(x), exact form.</summary>
    public static float Gelu(float x) => (float)(0.5 * x * (1.0 + Erf(x * InvSqrt2)));

    /// <summary>d/dx GELU(x) = Phi(x) + x * phi(x).</summary>
    public static float GeluDerivative(float x)
    {
        double xd = x;
        return (float)(0.5 * (1.0 + Erf(xd * InvSqrt2)) + xd * InvSqrt2Pi * Math.Exp(-0.5 * xd * xd));
    }
}
