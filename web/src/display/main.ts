import { mount } from 'svelte';
import Display from './Display.svelte';
import './display.css';

const target = document.getElementById('display');
if (target) mount(Display, { target });
