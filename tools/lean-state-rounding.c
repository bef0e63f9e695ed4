// The measurement behind bf16's stochastic rounding (results/lean-state.md): Adam's second moment
// under lw_adam_bf16 (stochastic) against round-to-nearest-even and fp32, with g = 0 (decay) and
// a steady g (growth to g^2). Build and run:
//   clang -O2 -I Sources/CKernels/include Sources/CKernels/lw_kernels.c tools/lean-state-rounding.c -o /tmp/rounding -lpthread -lm && /tmp/rounding
#include "lw_kernels.h"
#include <stdio.h>
#include <string.h>
#include <math.h>
static float bf(unsigned short h){unsigned int b=(unsigned int)h<<16; float f; memcpy(&f,&b,4); return f;}
static unsigned short rne(float x){unsigned int b; memcpy(&b,&x,4); return (unsigned short)((b+0x7fff+((b>>16)&1))>>16);}
enum{N=4096};
int main(){ static float w[N],g[N]; static unsigned short m[N],v[N];
 for(int i=0;i<N;i++){ v[i]=rne(0.01f); }
 float v0=bf(v[0]); unsigned short r=v[0]; float f32=v0;
 for(int t=1;t<=1000;t++){ lw_adam_bf16(w,g,m,v,N,0,lw_stochastic_key(1,t),0.9f,0.999f,1e-3f,1.f,1e-8f,0); r=rne(0.999f*bf(r)); f32=0.999f*f32; }
 double mean=0; for(int i=0;i<N;i++) mean+=bf(v[i]); mean/=N;
 printf("v0 %.6g after 1000 steps of g=0: fp32 %.6g (ratio %.4f), bf16 nearest %.6g (ratio %.4f), bf16 stochastic mean %.6g (ratio %.4f)\n",
   v0,f32,f32/v0,bf(r),bf(r)/v0,mean,mean/v0);
 // a steady gradient: v should reach g^2
 for(int i=0;i<N;i++){ g[i]=1e-3f; v[i]=0; m[i]=0;} unsigned short rn=0; float fv=0;
 for(int t=1;t<=5000;t++){ lw_adam_bf16(w,g,m,v,N,0,lw_stochastic_key(1,t),0.9f,0.999f,1e-3f,1.f,1e-8f,0); rn=rne(0.999f*bf(rn)+0.001f*1e-3f*1e-3f); fv=0.999f*fv+0.001f*1e-3f*1e-3f;}
 mean=0; for(int i=0;i<N;i++) mean+=bf(v[i]); mean/=N;
 printf("g=1e-3 for 5000 steps from v=0: fp32 %.6g, bf16 nearest %.6g, bf16 stochastic mean %.6g\n", fv, bf(rn), mean);
}
