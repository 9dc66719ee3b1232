/* The program that every layer of libinstcal is linked into on its own,
 * with only the layers below it (core/meson.build): it does nothing, but
 * linking it fails when the layer calls into a layer above. */
int main(void);

int main(void)
{
    return 0;
}
