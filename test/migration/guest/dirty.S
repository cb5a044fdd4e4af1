/*
 * dirty.S: a tiny multiboot guest kernel that keeps dirtying its memory, so that a live migration
 * needs several passes (or never converges when the bandwidth is low).
 *
 * It sweeps forever over [4 MiB, 4 MiB + mib MiB): one `incl` per 4 KiB page, then `spin` empty
 * loop iterations, and after each sweep it increments the sweep counter at physical 0x3ff000
 * (read it with HMP `xp /1wx 0x3ff000`). Kernel command line: `mib=N spin=M` (defaults 16 and 0);
 * mib is clamped to the memory the boot loader reports.
 *
 * Build: as --32 dirty.S -o dirty.o && ld -m elf_i386 -Ttext=0x100000 -e _start dirty.o -o dirty.elf
 */
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003          /* page-align modules, give us memory info */
        .set SWEEP_COUNTER, 0x3ff000
        .set REGION_START, 0x400000

        .section .text
        .globl _start
        .align 4
multiboot_header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

_start:
        cli
        mov     $stack_top, %esp
        movl    $16, mib
        movl    $0, spin
        movl    $0, SWEEP_COUNTER
        xor     %ebp, %ebp                 /* ebp = multiboot info, or 0 */
        cmp     $0x2BADB002, %eax          /* booted by a multiboot loader? */
        jne     clamp
        mov     %ebx, %ebp
        testl   $4, (%ebp)                 /* command line present? */
        jz      clamp
        mov     16(%ebp), %esi

parse:  movb    (%esi), %al
        test    %al, %al
        jz      clamp
        cmpl    $0x3d62696d, (%esi)        /* "mib=" */
        jne     1f
        add     $4, %esi
        call    atoi
        mov     %eax, mib
        jmp     parse
1:      cmpl    $0x6e697073, (%esi)        /* "spin" */
        jne     2f
        cmpb    $'=', 4(%esi)
        jne     2f
        add     $5, %esi
        call    atoi
        mov     %eax, spin
        jmp     parse
2:      inc     %esi
        jmp     parse

clamp:  /* at least 1 MiB, at most what lies above REGION_START (mem_upper is KiB above 1 MiB) */
        cmpl    $1, mib
        jae     3f
        movl    $1, mib
3:      test    %ebp, %ebp
        jz      sweep_start
        testl   $1, (%ebp)
        jz      sweep_start
        mov     8(%ebp), %ecx              /* mem_upper, KiB */
        shr     $10, %ecx                  /* MiB above 1 MiB */
        sub     $4, %ecx                   /* minus [1 MiB, 4 MiB) and one MiB of slack */
        jbe     sweep_start
        cmp     %ecx, mib
        jbe     sweep_start
        mov     %ecx, mib

sweep_start:
        mov     mib, %eax
        shl     $8, %eax                   /* pages = mib * 256 */
        mov     %eax, pages
sweep:  mov     $REGION_START, %edi
        mov     pages, %ecx
page:   incl    (%edi)
        mov     spin, %edx
        test    %edx, %edx
        jz      5f
4:      dec     %edx
        jnz     4b
5:      add     $4096, %edi
        dec     %ecx
        jnz     page
        incl    SWEEP_COUNTER
        jmp     sweep

/* atoi: decimal digits at esi → eax; esi is left after the last digit */
atoi:   xor     %eax, %eax
6:      movzbl  (%esi), %ecx
        sub     $'0', %ecx
        cmp     $9, %ecx
        ja      7f
        imul    $10, %eax
        add     %ecx, %eax
        inc     %esi
        jmp     6b
7:      ret

        .section .bss
        .align 16
mib:    .long 0
spin:   .long 0
pages:  .long 0
stack:  .space 4096
stack_top:
