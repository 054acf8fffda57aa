/* Fibers of the emulator (fiber.c). */
#ifndef CUDASIM_FIBER_H
#define CUDASIM_FIBER_H
#define FIBER_MAX 1024
int fiber_prepare(int n, void (*fn)(int));
void fiber_set_arg(int t);
void fiber_resume(int t);
void fiber_yield(int t);
#endif
